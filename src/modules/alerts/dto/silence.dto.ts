import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, IsString, IsUUID, Matches, Max, MaxLength, Min } from 'class-validator';
import { ListQueryDto } from '../../../common/pagination/list-query.dto';
import { IsStorableDateTime, IsStorableString } from '../../../common/validation/storable.decorators';
import { MAX_SILENCE_MINUTES } from '../silences.service';

const SERVICE_OR_ALL = /^([A-Za-z0-9_.-]{1,128}|\*)$/;
const SERVICE_MESSAGE = 'service must be 1-128 characters of [A-Za-z0-9_.-], or * for every service';

export class CreateSilenceDto {
  @ApiProperty({
    example: 'seo-optimizer',
    description: 'The service to silence, or * for every service of the tenant',
  })
  @IsString()
  @Matches(SERVICE_OR_ALL, { message: SERVICE_MESSAGE })
  service!: string;

  @ApiPropertyOptional({ example: 'planned migration', maxLength: 500 })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  @IsStorableString()
  reason?: string;

  @ApiPropertyOptional({ description: 'ISO 8601; when the silence begins (default: now)' })
  @IsOptional()
  @IsStorableDateTime()
  starts_at?: Date;

  @ApiPropertyOptional({ description: 'ISO 8601; when it ends. Give this or duration_minutes.' })
  @IsOptional()
  @IsStorableDateTime()
  expires_at?: Date;

  @ApiPropertyOptional({
    minimum: 1,
    maximum: MAX_SILENCE_MINUTES,
    example: 60,
    description: 'How long it lasts from starts_at. Give this or expires_at.',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_SILENCE_MINUTES)
  duration_minutes?: number;
}

export class SilencesQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ example: 'seo-optimizer' })
  @IsOptional()
  @Matches(SERVICE_OR_ALL, { message: SERVICE_MESSAGE })
  service?: string;

  @ApiPropertyOptional({ type: Boolean, description: 'true: only silences in force now' })
  @IsOptional()
  @Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean({ message: 'active must be true or false' })
  active?: boolean;
}

export class SilenceIdParamDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'id must be a UUID' })
  id!: string;
}

export class SilenceDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 'marketing' }) tenant!: string;
  @ApiProperty({ example: 'seo-optimizer', description: '* silences every service' }) service!: string;
  @ApiProperty({ nullable: true, type: String }) reason!: string | null;
  @ApiProperty() starts_at!: string;
  @ApiProperty() expires_at!: string;
  @ApiProperty({ nullable: true, type: String, description: 'When it was ended early (DELETE)' }) ended_at!:
    string | null;
  @ApiProperty({ description: 'In force now' }) active!: boolean;
  @ApiProperty() created_at!: string;
}

export class SilenceListDto {
  @ApiProperty({ type: [SilenceDto] }) items!: SilenceDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor!: string | null;
}
